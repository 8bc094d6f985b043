"""Check the IAM, session browser and DSMC answers fakes used to get wrong against the official
Python SDK's own models (`is_valid()`: required fields, enums, nested models) and operations.

Each check names the spec operation it covers:
  - iam.public_get_my_user_v3 / public_get_user_by_user_id_v3: every required field;
  - iam.admin_get_clientsby_namespaceby_idv3: every required field, and an unknown client;
  - iam.token_grant_v3: the token response model;
  - iam.admin_get_role_v3 / admin_get_role_namespace_permission_v3 with ADMIN:ROLE;
  - iam.public_create_user_v4 without a password (username required, password optional);
  - iam.revoke_token / revoke_a_user (the legacy /iam/oauth/revoke/token and /revoke/user);
  - iam.revoke_user_v3 refused for a player: an OAuth error body;
  - iam.admin_delete_user_information_v3 with the INFORMATION:USER permission;
  - sessionbrowser.update_session with only game_max_player;
  - dsmc.get_session: the Server model (artifact_path, is_override_region, ...).

Usage: AB_BASE_URL=http://127.0.0.1:8080 python wire_check.py (exit code 0 when all pass).
"""

import os
import sys
import time

import accelbyte_py_sdk
from accelbyte_py_sdk.api import dsmc, iam, sessionbrowser
from accelbyte_py_sdk.api.dsmc.models import ModelsClaimSessionRequest, ModelsCreateSessionRequest
from accelbyte_py_sdk.api.iam.models import AccountCreateUserRequestV4
from accelbyte_py_sdk.api.sessionbrowser.models import (
    ModelsCreateSessionRequest as SbCreateSessionRequest,
    ModelsGameSessionSetting,
    ModelsUpdateSessionRequest,
)
from accelbyte_py_sdk.core import InMemoryTokenRepository, MyConfigRepository
from accelbyte_py_sdk.services.auth import login_client, login_user

BASE = os.environ.get("AB_BASE_URL", "http://127.0.0.1:8080")
NAMESPACE = os.environ.get("AB_NAMESPACE", "matchbench")
GAME = ("matchbench-game", "matchbench-game-secret")
IAM_CLIENT = ("matchbench-iam", "matchbench-iam-secret")
PLAYER_CLIENT = "matchbench-player"
USER_ROLE = "2251438839e948d783ec0e5281daf05b"

failures = []


def check(name, ok, detail=""):
    print(f"[{'pass' if ok else 'FAIL'}] {name}{': ' + str(detail) if detail and not ok else ''}")
    if not ok:
        failures.append(name)


def valid(name, result, error):
    if error is not None:
        check(name, False, error)
        return
    ok, why = result.is_valid() if hasattr(result, "is_valid") else (True, None)
    check(name, ok, why)


def sdk_for(client_id, secret):
    sdk = accelbyte_py_sdk.AccelByteSDK()
    sdk.initialize(
        options={
            "config": MyConfigRepository(BASE, client_id, secret or "", NAMESPACE),
            "token": InMemoryTokenRepository(),
        }
    )
    return sdk


def player(username, password):
    sdk = sdk_for(PLAYER_CLIENT, "")
    token, error = login_user(username, password, sdk=sdk)
    check(f"login_user {username}", error is None, error)
    return sdk, token


def main():
    game = sdk_for(*GAME)
    login_client(sdk=game)
    validator = sdk_for(*IAM_CLIENT)
    login_client(sdk=validator)
    p1_sdk, p1 = player("player1", "Player1Pass!")

    result, error = iam.public_get_my_user_v3(sdk=p1_sdk)
    valid("iam.public_get_my_user_v3 (ModelUserResponseV3)", result, error)
    result, error = iam.public_get_user_by_user_id_v3(user_id=p1.user_id, namespace=NAMESPACE, sdk=p1_sdk)
    valid("iam.public_get_user_by_user_id_v3 (ModelPublicUserResponseV3)", result, error)
    result, error = iam.admin_get_clientsby_namespaceby_idv3(client_id=GAME[0], namespace=NAMESPACE, sdk=validator)
    valid("iam.admin_get_clientsby_namespaceby_idv3 (ClientmodelClientV3Response)", result, error)
    _, error = iam.admin_get_clientsby_namespaceby_idv3(client_id="nope", namespace=NAMESPACE, sdk=validator)
    check("unknown client answers 10365", error is not None and getattr(error, "error_code", None) == 10365, error)
    result, error = iam.token_grant_v3(grant_type="password", username="player2", password="Player2Pass!", sdk=sdk_for(PLAYER_CLIENT, ""))
    valid("iam.token_grant_v3 (OauthmodelTokenResponseV3)", result, error)
    check("token response carries unique_display_name", result is not None and result.unique_display_name, result)
    result, error = iam.admin_get_role_v3(role_id=USER_ROLE, sdk=validator)
    valid("iam.admin_get_role_v3 with ADMIN:ROLE", result, error)
    result, error = iam.admin_get_role_namespace_permission_v3(role_id=USER_ROLE, namespace=NAMESPACE, sdk=validator)
    valid("iam.admin_get_role_namespace_permission_v3 with ADMIN:ROLE", result, error)

    name = f"wire{int(time.time())}"
    body = AccountCreateUserRequestV4.create(auth_type="EMAILPASSWD", country="US", email_address=f"{name}@example.com", username=name)
    result, error = iam.public_create_user_v4(body=body, namespace=NAMESPACE, sdk=game)
    valid("iam.public_create_user_v4 without a password", result, error)
    if result is not None:
        _, error = iam.admin_delete_user_information_v3(user_id=result.user_id, namespace=NAMESPACE, sdk=game)
        check("iam.admin_delete_user_information_v3", error is None, error)

    _, error = iam.revoke_user_v3(user_id=p1.user_id, namespace=NAMESPACE, sdk=p1_sdk)
    check("iam.revoke_user_v3 refused with an OAuth error", error is not None and getattr(error, "error", None), error)

    p2_sdk, p2 = player("player2", "Player2Pass!")
    _, error = iam.revoke_token(token=p2.access_token, sdk=p2_sdk)
    check("iam.revoke_token (/iam/oauth/revoke/token)", error is None, error)
    _, error = iam.revoke_a_user(user_id=p2.user_id, sdk=game)
    check("iam.revoke_a_user (/iam/oauth/revoke/user)", error is None, error)

    setting = ModelsGameSessionSetting.create(
        allow_join_in_progress=True, current_internal_player=0, current_player=0, map_name="map",
        max_internal_player=0, max_player=2, mode="1v1", num_bot=0, password="", settings={},
    )
    sb, error = sessionbrowser.create_session(
        body=SbCreateSessionRequest.create(game_session_setting=setting, game_version="1.0", namespace=NAMESPACE, session_type="p2p", username="player1"),
        namespace=NAMESPACE, sdk=p1_sdk,
    )
    check("sessionbrowser.create_session", error is None, error)
    if sb is not None:
        result, error = sessionbrowser.update_session(
            body=ModelsUpdateSessionRequest.create(game_max_player=8), session_id=sb.session_id, namespace=NAMESPACE, sdk=p1_sdk,
        )
        check("sessionbrowser.update_session with only game_max_player", error is None and result.game_session_setting.max_player == 8, error)

    session_id = f"wire{int(time.time() * 1000)}"
    _, error = dsmc.create_session(
        body=ModelsCreateSessionRequest.create(client_version="", configuration="", deployment="default", game_mode="1v1",
                                               matching_allies=[], namespace=NAMESPACE, pod_name="", region="", session_id=session_id),
        namespace=NAMESPACE, sdk=game,
    )
    check("dsmc.create_session", error is None, error)
    dsmc.claim_server(body=ModelsClaimSessionRequest.create(game_mode="1v1", matching_allies=[], namespace=NAMESPACE, session_id=session_id), namespace=NAMESPACE, sdk=game)
    result, error = dsmc.get_session(session_id=session_id, namespace=NAMESPACE, sdk=game)
    valid("dsmc.get_session (ModelsSessionResponse with models.Server)", result, error)

    print(f"\n{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
