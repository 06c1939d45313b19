"""The read-only web console (``newswire console``): sources, pipeline, dead letters, articles.

``app`` holds the routes and what each page shows, ``readers`` what it reads in the
background (metrics scrapes, the newest records of the topics), ``status`` the rule that
names a source's status. It never writes to a topic or a sink.
"""
