"""A client of the Kubeflow Pipelines API server: submit runs, keep recurring runs as code.

Everything goes through kfp's own client (``kfp.Client``) and the usual KFP authentication:
an explicit host, a bearer token, or kfp's own discovery (in-cluster service account,
then your kube config). kfp is imported inside the functions that talk to a server, so
importing this package (and ``kubetfx --help``) stays light.

- :mod:`~kubetfx.kfpclient.connection`: where the server is, the connected client, and
  errors that never show the token.
- :mod:`~kubetfx.kfpclient.versions`: does the server's KFP release suit the pipeline's SDK.
- :mod:`~kubetfx.kfpclient.cron`: the cron grammar KFP's scheduler accepts, checked before
  any request.
- :mod:`~kubetfx.kfpclient.submit`: upload a pipeline (or a version) and start a run.
- :mod:`~kubetfx.kfpclient.schedule_file` and :mod:`~kubetfx.kfpclient.schedules`: the
  schedule file, and making the server's recurring runs match it.

Reading the compiled pipeline and typing its parameters is shared with ``kubetfx run``:
:mod:`kubetfx.pipeline_file`. Documented in docs/submit-and-schedule.md.
"""
