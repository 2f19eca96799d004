"""Plate cameras that push their reads: the box's HTTP receiver, its spool and its routing.

One receiver per box (one owner of the listening socket) serves every lane
whose camera pushes (:mod:`drivers.camera.push`). Each push is written to
disk before the camera gets its answer, duplicates (by the vendor's record
id, and by plate within a time window) are dropped and counted, and a
fresh read goes to its lane, which starts a passage or joins one its loop
started.
"""
