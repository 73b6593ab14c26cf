"""Atlas's planners: the offline catalog planner and the LLM planner.

Both implement `graph.planner.Planner`; the container picks one from the settings.
"""
