{#- One row per interaction known on the as-of date, flagged by what it means for marketing.
    A view: the rows are stored once, incrementally, in int_interactions_flagged. -#}
{{ config(materialized='view') }}

select * from {{ ref('int_interactions_flagged') }}
