"""Video evidence: where each passage's video is, and the box's own short clip of it.

Inspectors pull 5-10 minute windows of video on alert days and check every
vehicle in it has a ledger row. Each row therefore says where its video is
(the recorder, usually the plant's NVR, its channel and the passage's time
window, :class:`edged.ledger.record.Video`), and where a lane records
clips, the box keeps a few seconds around each passage itself, remuxed
from the camera's stream without decoding (:mod:`edged.video.recorder`),
under their own disk budget (:mod:`edged.video.store`).
"""
