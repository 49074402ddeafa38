-- Under every attribution model, the shares of each contract add up to the whole of it.
select contract_id, attribution_model, sum(credit) as credited
from {{ ref('int_contract_credits') }}
group by contract_id, attribution_model
having abs(sum(credit) - 1) > 1e-9
