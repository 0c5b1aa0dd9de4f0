"""The sync worker: the program every sync pod runs (`destinations worker`).

It reads one run's request (the job, from an environment variable) and the mounted credentials,
streams records between the job's source or sink and its provider in bounded memory, and reports the
result in the container's termination message with a matching exit code (destinations.api.runs).

Modules: `command` (the CLI), `run` (one run, start to report), `sources` and `sinks` (data endpoints),
`membership` (mirror-mode bookkeeping), `log` (structured progress lines), `report` (the result).
"""
