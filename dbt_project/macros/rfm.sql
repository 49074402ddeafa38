{#- The RFM segment of a customer from the recency and frequency quintile scores (1-5,
    5 best). Every one of the 25 combinations has exactly one segment:

    | segment            | recency | frequency |
    |--------------------|---------|-----------|
    | champions          | 4-5     | 4-5       |
    | potential_loyalist | 4-5     | 2-3       |
    | new_customer       | 4-5     | 1         |
    | loyal              | 3       | 4-5       |
    | need_attention     | 3       | 3         |
    | about_to_sleep     | 3       | 1-2       |
    | at_risk            | 2       | 3-5       |
    | at_risk            | 1       | 3         |
    | cant_lose          | 1       | 4-5       |
    | hibernating        | 2       | 1-2       |
    | lost               | 1       | 1-2       |
-#}
{% macro rfm_segment(recency_score, frequency_score) -%}
    case
        when {{ recency_score }} is null then 'no_purchase'
        when {{ recency_score }} >= 4 and {{ frequency_score }} >= 4 then 'champions'
        when {{ recency_score }} >= 4 and {{ frequency_score }} >= 2 then 'potential_loyalist'
        when {{ recency_score }} >= 4 then 'new_customer'
        when {{ recency_score }} = 3 and {{ frequency_score }} >= 4 then 'loyal'
        when {{ recency_score }} = 3 and {{ frequency_score }} = 3 then 'need_attention'
        when {{ recency_score }} = 3 then 'about_to_sleep'
        when {{ recency_score }} = 2 and {{ frequency_score }} >= 3 then 'at_risk'
        when {{ recency_score }} = 2 then 'hibernating'
        when {{ frequency_score }} >= 4 then 'cant_lose'
        when {{ frequency_score }} = 3 then 'at_risk'
        else 'lost'
    end
{%- endmacro %}

{#- Quintile score 1-5 of a value among all rows, by rank: 1 + floor(5 (rank - 1) / n).
    Ties share the rank, hence the score (ntile would split them by an arbitrary order). -#}
{% macro quintile(order_by, partition_by=none) -%}
    {%- set window -%}
        {%- if partition_by %}partition by {{ partition_by }} {% endif -%}
    {%- endset -%}
    (1 + floor(cast(5 * (rank() over ({{ window }}order by {{ order_by }}) - 1) as double precision)
               / count(*) over ({{ window }})))
{%- endmacro %}
