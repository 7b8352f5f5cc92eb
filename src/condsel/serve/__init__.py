"""``condsel serve``: conditional inference as a Ray Serve application.

``routing`` holds what the service decides (which member runs next, the final
answer) and needs no Ray; ``app`` builds the deployments around it; ``config``
turns the command's options into Ray Serve deployment options and a config
file for ``serve deploy``; ``client`` is a stdlib-only HTTP client used by the
tests and the load benchmark. Ray is imported only by ``app`` and ``metrics``.
"""
