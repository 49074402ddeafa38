{#- Who a release can reach, and how: the contact fields of every customer, in full. Read
    only by the audience releases (activation/), which write them into the release files
    and the CRM database; never published to BI (the `audiences` schema). A view: the
    fields are stored once, in staging. -#}
select
    customer_id,
    full_name,
    email,
    phone,
    {{ has_valid_contact('email', 'phone') }} as has_valid_contact
from {{ ref('stg_crm__customers') }}
