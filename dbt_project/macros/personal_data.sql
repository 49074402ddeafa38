{#- Personal data leaves staging only hashed or masked. The hash is SHA-256 of the
    trimmed, lower-cased value: the form ad platforms match audiences on. -#}

{% macro hash_personal(column) -%}
    {{ return(adapter.dispatch('hash_personal')(column)) }}
{%- endmacro %}

{% macro default__hash_personal(column) -%}
    case when {{ column }} is not null then sha256(lower(trim({{ column }}))) end
{%- endmacro %}

{% macro postgres__hash_personal(column) -%}
    case when {{ column }} is not null
         then encode(sha256(convert_to(lower(trim({{ column }})), 'UTF8')), 'hex') end
{%- endmacro %}

{% macro mask_email(column) -%}
    {#- j***@example.com: the first character and the domain. -#}
    {%- set at = dbt.position("'@'", column) -%}
    case when {{ column }} like '%@%'
         then {{ dbt.concat(["substr(" ~ column ~ ", 1, 1)", "'***'", "substr(" ~ column ~ ", " ~ at ~ ")"]) }}
    end
{%- endmacro %}

{% macro mask_phone(column) -%}
    {#- Keep the last three digits: ***-***-4567 style. -#}
    case when {{ column }} is not null
         then {{ dbt.concat(["'***'", dbt.right(column, "3")]) }}
    end
{%- endmacro %}
