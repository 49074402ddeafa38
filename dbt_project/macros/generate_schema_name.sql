{#- Models land in the schema their folder names (staging, marts, ...), not in
    "<target schema>_<name>", so every target has the same raw/staging/marts layout. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
