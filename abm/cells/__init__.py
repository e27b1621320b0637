"""Cell types: populations (struct of arrays) and one module of rules per type.

Data flow: model.step -> sense (gather) -> each rule module's ``update`` (state, events) and
``secretion`` (molecules/cell/s per field) -> the model scatters sources and moves cells.
"""
