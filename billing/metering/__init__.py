"""Contact metering: contacts live in their region cell; the control database gets rollups only."""
