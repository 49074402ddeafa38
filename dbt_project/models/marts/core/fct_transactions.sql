{#- One row per transaction known on the as-of date, with its product and margin. A view:
    the rows are stored once, incrementally, in int_transactions_enriched. -#}
{{ config(materialized='view') }}

select * from {{ ref('int_transactions_enriched') }}
