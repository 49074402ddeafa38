"""What every stage shares: settings, warehouse connections, Airflow assets, the `crm` CLI."""
