"""The web core: what the REST API, federation, P2P and the pages share to answer HTTP.

- ``context``: the app's and the request's keys (the Shoal, the user, the session) and who asks;
- ``responses``: JSON answers, with dates written as PeerTube writes them;
- ``validation``: request bodies and query strings as pydantic models, and their 400s;
- ``middleware``: errors as problem documents, retried reads, authentication, CSRF;
- ``media``: where a video's files are served (HLS, images, torrents, magnets, trackers);
- ``sending``: sending a stored file (sendfile, from memory, nginx, or a redirect to S3),
  with ``sendfile`` and ``hotfiles`` below it.
"""
