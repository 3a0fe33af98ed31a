"""Parse and validate HL7 v2.6 messages with hl7apy (strict), one file per argument; exit 1 naming the first
message that fails. hl7apy 1.3.5 has no ORU_R40 structure for v2.6; IHE PCD-04's ORU^R40 has the segment grammar
of ORU_R01 (MSH, PID, PV1, OBR, OBX...), so an ORU^R40^ORU_R40 is validated against the ORU_R01 structure."""
import sys

try:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message
except ImportError:
    print("IMPORT FAILED: pip install hl7apy==1.3.5")
    sys.exit(2)

for path in sys.argv[1:]:
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if "|2.6" not in text.split("\r", 1)[0]:
        print(f"{path}: not HL7 v2.6")
        sys.exit(1)
    text = text.replace("ORU^R40^ORU_R40", "ORU^R40^ORU_R01")
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        message.validate()
    except Exception as e:  # hl7apy raises several kinds; any of them is a failure
        print(f"{path}: {type(e).__name__}: {e}")
        sys.exit(1)
    print(f"{path}: {message.name} valid")
