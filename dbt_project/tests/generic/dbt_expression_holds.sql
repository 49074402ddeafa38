{#- A boolean SQL expression holds on every row (rows where it is false are returned). -#}
{% test dbt_expression_holds(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
