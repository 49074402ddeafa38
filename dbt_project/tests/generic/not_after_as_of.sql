{#- Point in time: no value of the column lies after the run's as-of date. -#}
{% test not_after_as_of(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} >= {{ as_of_cutoff() }}
{% endtest %}
