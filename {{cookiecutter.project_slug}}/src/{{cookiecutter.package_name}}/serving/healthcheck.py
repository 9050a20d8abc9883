"""Container HEALTHCHECK without curl: exit 0 when /health answers 200, else 1.

/health, not /ready: it is answered past MAX_CONNECTIONS (protocol.py), so a flood of idle sockets
cannot mark the container unhealthy and have it replaced. It still means "model loaded and warmed
up": uvicorn starts listening only once the app's start-up (load, warm-up) is done.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "3"))) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
