"""The live feed: committed changes, told to the dashboards that may see them, within a second."""
