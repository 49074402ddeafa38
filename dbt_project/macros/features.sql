{#- The dates the feature mart is built for: the `feature_dates` var (a list of
    YYYY-MM-DD, none after the as-of date), or just the as-of date. Training asks for the
    dates of its time-based split, daily scoring for the as-of date only. -#}
{% macro feature_dates() -%}
    {%- set as_of = as_of_date_value() -%}
    {%- set requested = var('feature_dates', none) -%}
    {%- if requested is none or requested == '' -%}
        {{ return([as_of.isoformat()]) }}
    {%- endif -%}
    {%- set dates = [] -%}
    {%- for value in (requested if requested is not string else requested.split(',')) -%}
        {%- set day = modules.datetime.datetime.strptime(value | string | trim, '%Y-%m-%d').date() -%}
        {%- if day > as_of -%}
            {{ exceptions.raise_compiler_error("feature date " ~ day ~ " is after the as-of date " ~ as_of) }}
        {%- endif -%}
        {%- do dates.append(day.isoformat()) -%}
    {%- endfor -%}
    {{ return(dates) }}
{%- endmacro %}

{#- One row per feature date with the first instant after it. -#}
{% macro feature_dates_relation() -%}
    {%- for day in feature_dates() %}
    select
        cast('{{ day }}' as date) as as_of_date,
        cast('{{ day }}' as timestamp) + interval '1 day' as cutoff
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
