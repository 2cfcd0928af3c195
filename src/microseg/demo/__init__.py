"""Demo data: a seeded generator of realistic customers, products and events with planted truth."""

from microseg.demo.generator import GROUPS, DemoManifest, generate_demo

__all__ = ["GROUPS", "DemoManifest", "generate_demo"]
