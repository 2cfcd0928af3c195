"""Demo data: a seeded generator of realistic customers, products and events with planted truth."""
