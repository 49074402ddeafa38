{#- Elapsed days between two timestamps, with the fraction (stage durations are short). -#}
{% macro days_between(start, finish) -%}
    ({{ dbt.datediff(start, finish, 'second') }} / 86400.0)
{%- endmacro %}
