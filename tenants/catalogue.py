"""The catalogue of integrations that merchants use, with where each one processes data by default.

A merchant may override the processing region when its vendor account is hosted elsewhere
(e.g. a Zendesk instance in the EU data centre).
"""

INTEGRATION_KINDS: dict[str, dict[str, str]] = {
    "shopify": {"label": "Shopify", "category": "storefront", "processing_region": "us"},
    "bigcommerce": {"label": "BigCommerce", "category": "storefront", "processing_region": "us"},
    "woocommerce": {"label": "WooCommerce", "category": "storefront", "processing_region": "us"},
    "magento": {"label": "Adobe Commerce (Magento)", "category": "storefront", "processing_region": "us"},
    "salesforce_commerce": {"label": "Salesforce Commerce Cloud", "category": "storefront", "processing_region": "us"},
    "tiktok_shop": {"label": "TikTok Shop", "category": "marketplace", "processing_region": "sg"},
    "shopee": {"label": "Shopee", "category": "marketplace", "processing_region": "sg"},
    "lazada": {"label": "Lazada", "category": "marketplace", "processing_region": "sg"},
    "amazon": {"label": "Amazon Seller Central", "category": "marketplace", "processing_region": "us"},
    "gorgias": {"label": "Gorgias", "category": "helpdesk", "processing_region": "us"},
    "zendesk": {"label": "Zendesk", "category": "helpdesk", "processing_region": "us"},
    "freshdesk": {"label": "Freshdesk", "category": "helpdesk", "processing_region": "us"},
    "intercom": {"label": "Intercom", "category": "helpdesk", "processing_region": "us"},
    "klaviyo": {"label": "Klaviyo", "category": "messaging", "processing_region": "us"},
    "aftership": {"label": "AfterShip", "category": "logistics", "processing_region": "us"},
    "loop": {"label": "Loop Returns", "category": "returns", "processing_region": "us"},
    "returnly": {"label": "Returnly", "category": "returns", "processing_region": "us"},
}
