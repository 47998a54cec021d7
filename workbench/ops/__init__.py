"""Operations from the playbook: the integrity monitor service, containment, the Kubernetes deployment.

* :mod:`workbench.ops.config`: the monitor's configuration, validated.
* :mod:`workbench.ops.monitor` (with :mod:`~workbench.ops.baseline` and :mod:`~workbench.ops.alerts`): the service.
* :mod:`workbench.ops.containment`, :mod:`~workbench.ops.assess`, :mod:`~workbench.ops.rollback` (with
  :mod:`~workbench.ops.fsutil`, :mod:`~workbench.ops.kube`, :mod:`~workbench.ops.signing`): assess, isolate, rollback.
* :mod:`workbench.ops.k8s`: ConfigMap and DaemonSet of the monitor.

The CLI commands are ``workbench monitor``, ``workbench contain`` and ``workbench k8s-manifest``.
"""
