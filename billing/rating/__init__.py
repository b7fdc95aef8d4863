"""Rating: contract terms + a period's usage and SLA outcomes -> invoice lines, exact to the cent.

Pure and storage-free. `charge_models` holds the pricing strategies (unit, graduated),
`lines` the line and totals shapes, `service` the use cases (`rate_period`, `rate_counts`,
`adjustments_between`). Money rules live in `billing.money`; credits come from `sla.credits`.
"""

from billing.rating.lines import InvoiceLine, LineKind, RatedInvoice
from billing.rating.service import Usage, adjustment_line, adjustments_between, rate_counts, rate_period

__all__ = [
    "InvoiceLine",
    "LineKind",
    "RatedInvoice",
    "Usage",
    "adjustment_line",
    "adjustments_between",
    "rate_counts",
    "rate_period",
]
