"""The training core: spec -> data -> model + method -> train -> artifacts.

Plain Python with a CLI (`studio train`). It never imports the web, queue or database layers.
"""
