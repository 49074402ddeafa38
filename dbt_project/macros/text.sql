{#- Figures written into sentences (reasons a reader sees beside the numbers), portable
    across the warehouses: whole units, no thousands separator; "n/a" when unknown. -#}
{% macro money_text(expr) -%}
    coalesce(cast(cast({{ expr }} as decimal(18, 0)) as {{ dbt.type_string() }}), 'n/a')
{%- endmacro %}

{#- A ratio as a whole percentage: 0.125 -> "13%". -#}
{% macro percent_text(expr) -%}
    coalesce(cast(cast(100 * {{ expr }} as decimal(18, 0)) as {{ dbt.type_string() }}) || '%', 'n/a')
{%- endmacro %}

{#- The incremental revenue's 95% interval: "300 to 1300 (95%)". -#}
{% macro interval_text(low='incremental_revenue_low', high='incremental_revenue_high') -%}
    {{ money_text(low) }} || ' to ' || {{ money_text(high) }} || ' (95%)'
{%- endmacro %}
