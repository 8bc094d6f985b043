"""Drive fakes with the official AccelByte Python SDKs, as a game team would.

Checks, against a running `fakes serve` (AB_BASE_URL etc. from its banner):
  1. accelbyte-py-sdk `login_user` (the PKCE authorize -> authenticate -> token flow) and the
     password grant (`token_grant_v3`), and `login_client` (client credentials);
  2. iam-python-sdk local validation: JWKS + revocation list (StartLocalValidation), client token
     grant, remote verify, ValidateAndParseClaims and ValidatePermission for
     NAMESPACE:{namespace}:MATCHMAKING CREATE;
  3. a free-form notification sent through the SDK arrives on the SDK's lobby WebSocket client;
  4. session browser create / add player / get (joinable) and DSMC register / claim / get.

Usage (versions this was checked with):
  pip install -r requirements.txt
  AB_BASE_URL=http://127.0.0.1:8080 AB_CLIENT_ID=matchbench-game \
  AB_CLIENT_SECRET=matchbench-game-secret AB_NAMESPACE=matchbench python sdk_check.py
Exit code 0 when every check passes.
"""

import asyncio
import os
import sys

import accelbyte_py_sdk
from accelbyte_py_sdk.api import dsmc, iam, lobby, sessionbrowser
from accelbyte_py_sdk.api.dsmc.models import (
    ModelsClaimSessionRequest,
    ModelsCreateSessionRequest as DsmcCreateSessionRequest,
    ModelsRequestMatchMember,
    ModelsRequestMatchParty,
    ModelsRequestMatchingAlly,
)
from accelbyte_py_sdk.api.lobby.models import ModelFreeFormNotificationRequest
from accelbyte_py_sdk.api.sessionbrowser.models import (
    ModelsAddPlayerRequest,
    ModelsCreateSessionRequest as SbCreateSessionRequest,
    ModelsGameSessionSetting,
)
from accelbyte_py_sdk.core import MyConfigRepository, InMemoryTokenRepository, WebsocketsWSClient
from accelbyte_py_sdk.services.auth import login_client, login_user
import iam_python_sdk
from iam_python_sdk.models import Permission

BASE = os.environ.get("AB_BASE_URL", "http://127.0.0.1:8080")
NAMESPACE = os.environ.get("AB_NAMESPACE", "matchbench")
GAME_ID = os.environ.get("AB_CLIENT_ID", "matchbench-game")
GAME_SECRET = os.environ.get("AB_CLIENT_SECRET", "matchbench-game-secret")
PLAYER_CLIENT = "matchbench-player"
IAM_CLIENT = ("matchbench-iam", "matchbench-iam-secret")
USERS = [("player1", "Player1Pass!"), ("player2", "Player2Pass!")]

failures = []


def check(name, ok, detail=""):
    print(f"[{'pass' if ok else 'FAIL'}] {name}{': ' + str(detail) if detail and not ok else ''}")
    if not ok:
        failures.append(name)


def sdk_for(client_id, secret):
    sdk = accelbyte_py_sdk.AccelByteSDK()
    sdk.initialize(
        options={
            "config": MyConfigRepository(BASE, client_id, secret or "", NAMESPACE),
            "token": InMemoryTokenRepository(),
        }
    )
    return sdk


async def main():
    # 1. logins
    players = []
    for username, password in USERS:
        sdk = sdk_for(PLAYER_CLIENT, "")
        token, error = login_user(username, password, sdk=sdk)
        check(f"login_user (PKCE) {username}", error is None and token and token.access_token, error)
        players.append((sdk, token))
    sdk = sdk_for(PLAYER_CLIENT, "")
    result, error = iam.token_grant_v3(grant_type="password", username=USERS[0][0], password=USERS[0][1], sdk=sdk)
    check("token_grant_v3 password grant", error is None and result.access_token, error)
    game = sdk_for(GAME_ID, GAME_SECRET)
    game_token, error = login_client(sdk=game)
    check("login_client (client credentials)", error is None and game_token.access_token, error)

    # 2. local validation with iam-python-sdk
    validator = iam_python_sdk.NewDefaultClient(
        iam_python_sdk.Config(BaseURL=BASE + "/iam", ClientID=IAM_CLIENT[0], ClientSecret=IAM_CLIENT[1])
    )
    try:
        validator.ClientTokenGrant()
        validator.StartLocalValidation()
        check("iam-python-sdk ClientTokenGrant + StartLocalValidation", True)
    except Exception as e:  # noqa: BLE001 - report any failure of the validator
        check("iam-python-sdk ClientTokenGrant + StartLocalValidation", False, repr(e))
    user_token = players[0][1].access_token
    try:
        check("iam-python-sdk ValidateAccessToken (remote verify)", validator.ValidateAccessToken(user_token))
        claims = validator.ValidateAndParseClaims(user_token)
        check("iam-python-sdk ValidateAndParseClaims", claims is not None and claims.Sub == players[0][1].user_id)
        allowed = validator.ValidatePermission(
            claims, Permission.loads({"Resource": "NAMESPACE:{namespace}:MATCHMAKING", "Action": 1}), {"{namespace}": claims.Namespace}
        )
        check("iam-python-sdk ValidatePermission MATCHMAKING CREATE", allowed)
        denied = validator.ValidatePermission(
            claims, Permission.loads({"Resource": "ADMIN:NAMESPACE:{namespace}:USER", "Action": 1}), {"{namespace}": claims.Namespace}
        )
        check("iam-python-sdk ValidatePermission refuses an admin permission", not denied)
    except Exception as e:  # noqa: BLE001
        check("iam-python-sdk validation", False, repr(e))
    finally:
        validator.close() if hasattr(validator, "close") else None

    # 3. lobby WebSocket + free-form notification
    received = []
    ws_sdk, ws_token = players[1]
    ws = WebsocketsWSClient(uri=BASE, username="", password="", access_token=ws_token.access_token, uri_prefix="ws://")
    async def on_message(message):
        received.append(message)

    ws.listeners.append(on_message)
    await ws.connect()
    _, error = lobby.free_form_notification_by_user_id(
        body=ModelFreeFormNotificationRequest.create(message="found 127.0.0.1 7777", topic="NOTIF"),
        user_id=ws_token.user_id,
        namespace=NAMESPACE,
        sdk=game,
    )
    check("free_form_notification_by_user_id", error is None, error)
    for _ in range(100):
        if any("payload: found 127.0.0.1 7777" in m for m in received):
            break
        await asyncio.sleep(0.05)
    check("messageNotif received on the SDK's lobby client", any("payload: found 127.0.0.1 7777" in m for m in received), received)
    await ws.disconnect()

    # 4. session browser + DSMC, the tutorial's calls
    p1_sdk, p1 = players[0]
    p2 = players[1][1]
    setting = ModelsGameSessionSetting.create(
        allow_join_in_progress=True, current_internal_player=0, current_player=0, map_name="map",
        max_internal_player=2, max_player=0, mode="1v1", num_bot=0, password="", settings={},
    )
    sb, error = sessionbrowser.create_session(
        body=SbCreateSessionRequest.create(
            game_session_setting=setting, game_version="1.0", namespace=NAMESPACE, session_type="dedicated", username="mm"
        ),
        namespace=NAMESPACE,
        sdk=p1_sdk,
    )
    check("sessionbrowser.create_session", error is None and sb.session_id, error)
    session_id = sb.session_id
    members = [ModelsRequestMatchMember.create(user_id=t.user_id) for t in (p1, p2)]
    allies = [ModelsRequestMatchingAlly.create(matching_parties=[
        ModelsRequestMatchParty.create(party_attributes={}, party_id="p", party_members=members)])]
    _, error = dsmc.create_session(
        body=DsmcCreateSessionRequest.create(
            client_version="", configuration="", deployment="default", game_mode="1v1",
            matching_allies=allies,
            namespace=NAMESPACE, pod_name="", region="", session_id=session_id,
        ),
        namespace=NAMESPACE,
        sdk=game,
    )
    check("dsmc.create_session", error is None, error)
    _, error = dsmc.claim_server(
        body=ModelsClaimSessionRequest.create(
            game_mode="1v1", matching_allies=allies, namespace=NAMESPACE, session_id=session_id
        ),
        namespace=NAMESPACE,
        sdk=game,
    )
    check("dsmc.claim_server", error is None, error)
    ds, error = dsmc.get_session(session_id=session_id, namespace=NAMESPACE, sdk=game)
    check("dsmc.get_session reads session.Server.ip/port", error is None and ds.session.server.ip and ds.session.server.port, error)
    for t in (p1, p2):
        _, error = sessionbrowser.add_player_to_session(
            body=ModelsAddPlayerRequest.create(as_spectator=False, user_id=t.user_id),
            session_id=session_id, namespace=NAMESPACE, sdk=p1_sdk,
        )
        check(f"sessionbrowser.add_player_to_session {t.user_id[:8]}", error is None, error)
    got, error = sessionbrowser.get_session(session_id=session_id, namespace=NAMESPACE, sdk=game)
    check("sessionbrowser.get_session joinable", error is None and got.joinable, error)

    print(f"\n{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
