"""The deploy layer: plain classes that check, diff and carry out each resource's lifecycle.

No Pulumi here. The dynamic resources (``resources/``) and the native provider are two front
doors onto these same steps: parse the typed inputs, make one call in here, turn the typed state
into outputs.
"""
