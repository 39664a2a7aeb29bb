"""Grafana dashboards and provisioning as code (grafana-foundation-sdk).

Not built yet: the dashboards issue fills this subpackage. It exists now so the distribution's
layout is final and packaging tests cover it.
"""

__all__: list[str] = []
