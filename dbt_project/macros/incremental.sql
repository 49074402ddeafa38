{#- Incremental facts, point in time.

    A row is (re)computed when it may differ from what the table holds:
    - it was loaded after the newest row the table has (`_loaded_at` watermark), which
      catches late-arriving rows however late they are;
    - or it happened or was updated within `lookback_days` before the previous run's
      as-of date or since (rows that were not yet visible then, refunds that were).
    A run for an as-of date earlier than the table's (a backfill out of order), or on an
    empty table, rebuilds it: `rebuild_if_needed()` empties it first, then every row is
    recomputed.
    Each row keeps the as-of date of the run that wrote it in `_as_of_date`. -#}

{% macro incremental_needs_rebuild(relation) -%}
    {#- True when the table is empty (an entity delivered for the first time) or was last
        written for a later as-of date than this run's. -#}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set result = run_query("select max(_as_of_date) from " ~ relation) -%}
    {%- set previous = result.columns[0].values()[0] if result and result.rows else none -%}
    {%- if previous is none -%}{{ return(true) }}{%- endif -%}
    {{ return(previous | string > as_of_date_value().isoformat()) }}
{%- endmacro %}

{% macro rebuild_if_needed() -%}
    {%- if is_incremental() and incremental_needs_rebuild(this) -%}
        delete from {{ this }}
    {%- endif -%}
{%- endmacro %}

{% macro incremental_changes_filter(event_columns) -%}
    {#- A where-clause body selecting the rows to recompute on an incremental run. -#}
    {%- set window_start -%}
        cast({{ dbt.dateadd('day', 1 - var('lookback_days'), '(select max(_as_of_date) from ' ~ this ~ ')') }} as timestamp)
    {%- endset -%}
    _loaded_at > (select max(_loaded_at) from {{ this }})
    {%- for column in event_columns %}
    or {{ column }} >= {{ window_start }}
    {%- endfor %}
{%- endmacro %}

{% macro forget_deleted(key, entity, staging_model) -%}
    {#- An incremental fact's rows whose key the CRM deleted (soft delete, `deleted_at`)
        by the as-of date: the change filter never selects a key staging no longer has,
        so delete it here. A key deleted and later restored is still in staging and stays
        (or comes back with the incremental rows). -#}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ key }} in (
            {#- staging trims keys; compare the same way #}
            select trim(deleted.{{ key }}) from {{ source('crm', entity) }} as deleted
            where deleted.deleted_at < {{ as_of_cutoff() }}
              and not exists (
                  select 1 from {{ ref(staging_model) }} as kept
                  where kept.{{ key }} = trim(deleted.{{ key }})
              )
        )
    {%- endif -%}
{%- endmacro %}

{% macro forget_this_as_of_date() -%}
    {#- A history mart keeps one as-of date per run: the run's own date is deleted before
        it is written again, so a re-run or a backfill replaces it and keeps the others. -#}
    {%- if is_incremental() -%}
        delete from {{ this }} where as_of_date = {{ as_of_date() }}
    {%- endif -%}
{%- endmacro %}
