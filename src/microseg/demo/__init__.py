"""Demo data: a seeded generator of realistic customers, products and events with planted truth."""

from microseg.demo.generator import GROUPS, DemoManifest, generate_demo
from microseg.demo.shock import Shock

__all__ = ["GROUPS", "DemoManifest", "Shock", "generate_demo"]
