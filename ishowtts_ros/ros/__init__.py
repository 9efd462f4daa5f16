"""The ROS 2 adapter: ``tts_node``, ``tts_player``, the ``tts/audio`` wire format and a DDS client."""
