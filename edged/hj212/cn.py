"""Every HJ 212 command code (CN) and system code (ST) edged speaks, in one place.

Names follow the standard's tables (HJ 212-2017 §6.6, HJ 212-2025); the
uplink, the data logger's store, the forwarder and the encryption rule all
take the codes from here, so a code is never a string typed twice.
"""

from __future__ import annotations

# -- initialisation and parameters (初始化命令, 参数命令) -------------------------
SET_TIMEOUTS = "1000"  # 设置超时时间及重发次数
IDENTITY = "1001"  # 2025: hardware identity upload (现场机信息上传)
SET_MN = "1002"  # 2025: MN assignment
GET_TIME = "1011"
SET_TIME = "1012"
NEW_KEY = "1014"  # 2025: SM4 key update
GET_RTD_INTERVAL = "1061"
SET_RTD_INTERVAL = "1062"
GET_MIN_INTERVAL = "1063"
SET_MIN_INTERVAL = "1064"
SET_PASSWORD = "1072"

# -- data (数据命令) ---------------------------------------------------------------
REALTIME = "2011"
REALTIME_STOP = "2012"
RAW = "2013"  # 2025: raw data
DAY = "2031"
MINUTE = "2051"
HOUR = "2061"
CHECK = "2062"  # 2025
ALARM = "2072"  # default CN of over-limit and fault alarms sent at once
RESTART = "2081"
FURNACE = "2111"  # 2025
HISTORY = (MINUTE, HOUR, DAY)

# -- control (控制命令) ---------------------------------------------------------------
INFO = "3020"
SAMPLE_RETAIN = "3022"  # 2025
STANDARD_CHECK = "3024"  # 2025

# -- system interaction (交互命令) ------------------------------------------------------
REQUEST_REPLY = "9011"  # QnRtn
RESULT = "9012"  # ExeRtn
NOTICE_REPLY = "9013"
DATA_REPLY = "9014"
HEARTBEAT = "9015"  # 2025

ST_SYSTEM = "91"  # system interaction (系统交互): 9011..9015 and the 1001 identity upload
