{#- The funnel's stages in order. won and lost are outcomes, entered from negotiation (won)
    or from any stage (lost). -#}
{% macro funnel_stages() -%}
    {{ return(['lead', 'qualified', 'proposal', 'negotiation']) }}
{%- endmacro %}

{% macro stage_order(column) -%}
    case {{ column }}
        when 'lead' then 1
        when 'qualified' then 2
        when 'proposal' then 3
        when 'negotiation' then 4
        when 'won' then 5
        when 'lost' then 5
    end
{%- endmacro %}

{#- Elapsed days between two timestamps, with the fraction (stage durations are short). -#}
{% macro days_between(start, finish) -%}
    ({{ dbt.datediff(start, finish, 'second') }} / 86400.0)
{%- endmacro %}
