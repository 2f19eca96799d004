"""The gate decision: vehicle registry, lists, admission policy, approvals.

Identify → verify → decide → act. The registry answers "who is this", the
policy answers "may it pass now", and the GPIO driver (``drivers.gpio``) acts.
"""
