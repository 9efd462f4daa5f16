"""The engine-agnostic core: engine API and registry, speech queue, text, audio, voices. Imports neither torch nor
ROS, so the CLI, the node and the Wyoming server all start cheaply and share one behaviour."""
