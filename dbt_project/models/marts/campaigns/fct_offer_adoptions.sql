{#- One row per customer and offer adopted (the first completed purchase of it) by the
    as-of date, with the campaign credited for it, if any (int_offer_adoptions_attributed).
    What the target-customer models and the audience releases read. -#}
select
    customer_id,
    product_id as offer_id,
    adopted_at,
    amount,
    campaign_id
from {{ ref('int_offer_adoptions_attributed') }}
