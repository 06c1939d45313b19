"""The newswire shell: the ``newswire`` command, the settings object, local broker tooling.

It wires connectors and pipeline together from settings and holds no domain logic.
"""
