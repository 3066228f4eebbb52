"""The process harness that the tests and ``bench/`` share: free ports (``ports``), throw-away
PostgreSQL databases (``postgres``), processes of ours with logs (``processes``), a moto S3
endpoint in this process or its own (``s3``), and servers started the way production starts them
(``servers``). Modules that speak pytest (skip or fail) say so; the others raise ``HarnessError``.
"""
