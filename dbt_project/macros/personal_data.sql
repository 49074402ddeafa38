{#- Personal data leaves staging only masked; the e-mail's keyed hash is made at ingest
    (ingest/personal.py), where the key stays out of SQL. Ingestion also parses the contact
    fields (one address, one number of 7-15 digits), so a mask is taken from a parsed value;
    the masks still check the shape, for rows loaded before that check existed. -#}

{% macro mask_email(column) -%}
    {#- j***@example.com: the first character and the domain of one address. -#}
    case when {{ column }} like '_%@_%._%'
              and {{ column }} not like '%@%@%'
              and {{ column }} not like '% %'
              and {{ column }} not like '%;%'
              and {{ column }} not like '%,%'
         then {{ dbt.concat(["substr(" ~ column ~ ", 1, 1)", "'***@'", dbt.split_part(column, "'@'", 2)]) }}
    end
{%- endmacro %}

{% macro mask_phone(column) -%}
    {#- ***567: the last three digits of a number of 7 digits or more. -#}
    case when {{ dbt.length(column) }} >= 7
         then {{ dbt.concat(["'***'", dbt.right(column, "3")]) }}
    end
{%- endmacro %}

{% macro has_valid_contact(email, phone) -%}
    {#- A customer a release can reach: one e-mail address, or a number of 7 digits or
        more. Ingestion already nulls anything else; rows loaded before it did are
        checked here. -#}
    {{ return(adapter.dispatch('has_valid_contact')(email, phone)) }}
{%- endmacro %}

{% macro default__has_valid_contact(email, phone) -%}
    coalesce(trim({{ email }}) ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$', false)
    or coalesce(length(regexp_replace({{ phone }}, '[^0-9]', '', 'g')) >= 7, false)
{%- endmacro %}

{% macro duckdb__has_valid_contact(email, phone) -%}
    coalesce(regexp_full_match(trim({{ email }}), '[^@\s]+@[^@\s]+\.[^@\s]+'), false)
    or coalesce(length(regexp_replace({{ phone }}, '[^0-9]', '', 'g')) >= 7, false)
{%- endmacro %}
