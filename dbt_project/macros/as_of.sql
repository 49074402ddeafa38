{#- The as-of date of the run and the first instant after it. A run for date D sees an
    event when it happened before 00:00 UTC on D + 1 (`< as_of_cutoff()`). -#}

{% macro as_of_date_value() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or value == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "No as-of date: pass --vars '{as_of: YYYY-MM-DD}' (crm run does this for you)") }}
        {%- endif -%}
        {{ return(modules.datetime.date(2000, 1, 1)) }}
    {%- endif -%}
    {%- set text = value | string -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', text) -%}
        {{ exceptions.raise_compiler_error("as_of must be YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(modules.datetime.datetime.strptime(text, '%Y-%m-%d').date()) }}
{%- endmacro %}

{% macro as_of_date() -%}
    cast('{{ as_of_date_value().isoformat() }}' as date)
{%- endmacro %}

{% macro as_of_cutoff() -%}
    {%- set next_day = as_of_date_value() + modules.datetime.timedelta(days=1) -%}
    cast('{{ next_day.isoformat() }} 00:00:00' as timestamp)
{%- endmacro %}
