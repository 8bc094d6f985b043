//! Session v2 party routes (`/session/v1/public/namespaces/{namespace}/…`): create, get, join
//! (by invite or code), leave, reject, invite, kick, promote leader, update (PATCH and PUT),
//! `users/me/parties`, and the lobby notifications the client SDKs listen for.
//!
//! Permissions are the spec's: `NAMESPACE:{namespace}:SESSION:PARTY` CREATE (create), READ
//! (get), UPDATE (update, promote); `…:SESSION:PARTY:PLAYER` CREATE (join, invite), DELETE
//! (leave, reject, kick). Every route needs a user token. Errors are Session v2's
//! `response.Error`.
//!
//! Notifications (lobby `messageNotif`, base64 JSON, through the hub's one send path):
//! `OnPartyInvited` to the invitee; `OnPartyJoined` and `OnPartyMembersChanged` to the members
//! when someone joins; `OnPartyMembersChanged` when someone leaves, is kicked or the leader
//! changes (its `leaderID`); `OnPartyKicked` to the kicked user; `OnPartyRejected` to the
//! members when an invite is declined; `OnPartyUpdated` after an update or a promotion.
//!
//! Matchmaking: AGS cancels a party's match ticket when the party's members change while it
//! searches, so every join, leave and kick cancels the party's queued tickets
//! (`OnMatchmakingTicketCanceled` to the ticket's players; see [`crate::match2`]).

use accelbyte::models::session::{
    CreatePartyRequest, JoinByCodeRequest, JoinSessionRequest, KickResponse, PartyInvitedNotif,
    PartyJoinedNotif, PartyKickedNotif, PartyMembersChangedNotif, PartyQueryResponse,
    PartyRejectedNotif, PartySessionResponse, PromoteLeaderRequest, PublicConfiguration,
    SessionInviteRequest, SessionInviteResponse, UpdatePartyRequest, topics,
};
use accelbyte::permission::action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::party::{NewParty, Party, PartyConfig, PartyError, PartyPatch};
use super::{
    JOINABILITIES, KINDS, authorize, bad_request, ensure_user, members_view, rfc3339, tell, user_of,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorShape, code_for};
use crate::extract::JsonBody;
use crate::iam::store::new_id;
use crate::lobby::notify::send_json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    const PUBLIC: &str = "/session/v1/public/namespaces/{namespace}";
    Router::new()
        .route(&format!("{PUBLIC}/party"), post(create_party))
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}"),
            get(get_party).patch(patch_party).put(put_party),
        )
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}/users/me/join"),
            post(join_party),
        )
        .route(
            &format!("{PUBLIC}/parties/users/me/join/code"),
            post(join_by_code),
        )
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}/users/me/leave"),
            delete(leave_party),
        )
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}/users/me/reject"),
            delete(reject_party),
        )
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}/invite"),
            post(invite_to_party),
        )
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}/users/{{userId}}/kick"),
            delete(kick_member),
        )
        .route(
            &format!("{PUBLIC}/parties/{{partyId}}/leader"),
            post(promote_leader),
        )
        .route(&format!("{PUBLIC}/users/me/parties"), get(my_parties))
}

fn error(e: PartyError) -> ApiError {
    let status = match &e {
        PartyError::NotFound(_) | PartyError::CodeNotFound(_) => StatusCode::NOT_FOUND,
        PartyError::NotMember(_) | PartyError::NotLeader | PartyError::NotInvited(_) => {
            StatusCode::FORBIDDEN
        }
        PartyError::Full | PartyError::Closed => StatusCode::BAD_REQUEST,
        PartyError::VersionMismatch { .. } => StatusCode::CONFLICT,
        PartyError::TooMany => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, code_for(status), e.to_string()).with_shape(ErrorShape::SessionBrowserV2)
}

fn party_resource(namespace: &str) -> String {
    format!("NAMESPACE:{namespace}:SESSION:PARTY")
}

fn player_resource(namespace: &str) -> String {
    format!("NAMESPACE:{namespace}:SESSION:PARTY:PLAYER")
}

/// A party as the spec's `apimodels.PartySessionResponse`.
pub fn party_view(p: &Party) -> PartySessionResponse {
    let c = &p.config;
    PartySessionResponse {
        attributes: p.attributes.clone(),
        code: p.code.clone(),
        configuration: PublicConfiguration {
            auto_join: false,
            client_version: String::new(),
            deployment: String::new(),
            ds_source: String::new(),
            inactive_timeout: c.inactive_timeout,
            invite_timeout: c.invite_timeout,
            joinability: c.joinability.clone(),
            max_players: c.max_players,
            min_players: c.min_players,
            name: c.name.clone(),
            persistent: false,
            requested_regions: Vec::new(),
            text_chat: c.text_chat,
            kind: c.kind.clone(),
        },
        created_at: rfc3339(p.created_at),
        created_by: p.created_by.clone(),
        expired_at: String::new(),
        id: p.id.clone(),
        is_active: true,
        is_full: p.is_full(),
        leader_id: p.leader_id.clone(),
        members: members_view(&p.members),
        namespace: p.namespace.clone(),
        updated_at: rfc3339(p.updated_at),
        version: p.version,
    }
}

/// `OnPartyMembersChanged` to the party's members (`joiner` empty unless someone joined).
fn announce_members_changed(state: &AppState, party: &Party, joiner: &str) {
    let body = PartyMembersChangedNotif {
        session: party_view(party),
        joiner_id: joiner.to_owned(),
        leader_id: party.leader_id.clone(),
    };
    tell(
        state,
        &party.namespace,
        &party.joined(),
        topics::PARTY_MEMBERS_CHANGED,
        &body,
    );
}

/// After a membership change: the members hear of it and the party's search stops.
fn membership_changed(state: &AppState, party: &Party, joiner: &str) {
    announce_members_changed(state, party, joiner);
    crate::match2::cancel_party_tickets(state, &party.namespace, &party.id);
}

fn invite_notif(state: &AppState, party: &Party, sender: &str, user: &str) {
    let body = PartyInvitedNotif {
        party_id: party.id.clone(),
        sender_id: sender.to_owned(),
    };
    send_json(
        &state.lobby,
        &party.namespace,
        user,
        topics::PARTY_INVITED,
        &body,
    );
}

fn check_joinability(joinability: &str) -> ApiResult<()> {
    if joinability.is_empty() || JOINABILITIES.contains(&joinability) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "joinability must be one of {JOINABILITIES:?}, got {joinability:?}"
        )))
    }
}

fn check_kind(kind: &str) -> ApiResult<()> {
    if kind.is_empty() || KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "type must be one of {KINDS:?}, got {kind:?}"
        )))
    }
}

fn check_players(min: i32, max: i32) -> ApiResult<()> {
    if min < 0 || max < 0 || (max > 0 && min > max) {
        return Err(bad_request(format!(
            "players must satisfy 0 <= minPlayers <= maxPlayers, got {min}..{max}"
        )));
    }
    Ok(())
}

/// POST `.../party` (200): the caller creates and leads a party (leaving any other); the
/// body's other `members` are invited.
async fn create_party(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<CreatePartyRequest>,
) -> ApiResult<Json<PartySessionResponse>> {
    authorize(
        &state,
        &caller,
        &namespace,
        &party_resource(&namespace),
        action::CREATE,
    )?;
    let user = user_of(&caller)?;
    check_joinability(&body.joinability)?;
    check_kind(&body.kind)?;
    check_players(body.min_players, body.max_players)?;
    let mut config = if body.configuration_name.is_empty() {
        PartyConfig::default_party()
    } else {
        let template = state
            .game_sessions
            .template(&namespace, &body.configuration_name)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    code_for(StatusCode::NOT_FOUND),
                    format!(
                        "configuration template {} not found",
                        body.configuration_name
                    ),
                )
                .with_shape(ErrorShape::SessionBrowserV2)
            })?;
        PartyConfig::from_template(&template)
    };
    let ceiling = config.max_players;
    if !body.joinability.is_empty() {
        config.joinability = body.joinability;
    }
    if !body.kind.is_empty() {
        config.kind = body.kind;
    }
    if body.max_players > 0 && (ceiling <= 0 || body.max_players <= ceiling) {
        config.max_players = body.max_players;
    }
    if body.min_players > 0 {
        config.min_players = body.min_players.min(config.max_players);
    }
    if body.invite_timeout > 0 {
        config.invite_timeout = body.invite_timeout;
    }
    if body.inactive_timeout > 0 {
        config.inactive_timeout = body.inactive_timeout;
    }
    config.text_chat = body.text_chat || config.text_chat;
    let invited: Vec<String> = body
        .members
        .iter()
        .map(|m| m.id.clone())
        .filter(|id| !id.is_empty() && *id != user)
        .collect();
    for id in &invited {
        ensure_user(&state, &namespace, id)?;
    }
    let moved = state
        .parties
        .create(
            NewParty {
                namespace: namespace.clone(),
                creator: user.clone(),
                config,
                attributes: body.attributes,
                invited: invited.clone(),
            },
            new_id(),
        )
        .map_err(error)?;
    if let Some(left) = &moved.left {
        membership_changed(&state, left, "");
    }
    for id in &invited {
        invite_notif(&state, &moved.party, &user, id);
    }
    Ok(Json(party_view(&moved.party)))
}

/// GET `.../parties/{partyId}`: members (invited or joined) only.
async fn get_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<Json<PartySessionResponse>> {
    authorize(
        &state,
        &caller,
        &namespace,
        &party_resource(&namespace),
        action::READ,
    )?;
    let user = user_of(&caller)?;
    let party = state
        .parties
        .get(&namespace, &id)
        .ok_or_else(|| error(PartyError::NotFound(id)))?;
    if party.member(&user).is_none() {
        return Err(error(PartyError::NotMember(user)));
    }
    Ok(Json(party_view(&party)))
}

async fn update(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    id: &str,
    body: UpdatePartyRequest,
) -> ApiResult<Json<PartySessionResponse>> {
    authorize(
        state,
        caller,
        namespace,
        &party_resource(namespace),
        action::UPDATE,
    )?;
    let user = user_of(caller)?;
    check_joinability(&body.joinability)?;
    check_kind(&body.kind)?;
    check_players(body.min_players, body.max_players)?;
    let party = state
        .parties
        .update(
            namespace,
            id,
            &user,
            PartyPatch {
                version: body.version,
                attributes: body.attributes,
                joinability: body.joinability,
                min_players: body.min_players,
                max_players: body.max_players,
                invite_timeout: body.invite_timeout,
                inactive_timeout: body.inactive_timeout,
                kind: body.kind,
            },
        )
        .map_err(error)?;
    let view = party_view(&party);
    tell(
        state,
        namespace,
        &party.joined(),
        topics::PARTY_UPDATED,
        &view,
    );
    Ok(Json(view))
}

/// PATCH `.../parties/{partyId}`: a member updates the party naming its `version`.
async fn patch_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdatePartyRequest>,
) -> ApiResult<Json<PartySessionResponse>> {
    update(&state, &caller, &namespace, &id, body).await
}

/// PUT `.../parties/{partyId}`: the same body, replacing the attributes (as PATCH does here:
/// the spec's body carries every field either way).
async fn put_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdatePartyRequest>,
) -> ApiResult<Json<PartySessionResponse>> {
    update(&state, &caller, &namespace, &id, body).await
}

fn announce_join(state: &AppState, moved: &super::party::Moved, user: &str) {
    if let Some(left) = &moved.left {
        membership_changed(state, left, "");
    }
    let party = &moved.party;
    let joined = PartyJoinedNotif {
        party_id: party.id.clone(),
        members: members_view(&party.members),
    };
    tell(
        state,
        &party.namespace,
        &party.joined(),
        topics::PARTY_JOINED,
        &joined,
    );
    membership_changed(state, party, user);
}

/// POST `.../parties/{partyId}/users/me/join` (200). The body (`apimodels.JoinSessionRequest`,
/// a password) may be absent: older SDKs send none.
async fn join_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<PartySessionResponse>> {
    authorize(
        &state,
        &caller,
        &namespace,
        &player_resource(&namespace),
        action::CREATE,
    )?;
    if !body.is_empty() {
        let _: JoinSessionRequest = crate::extract::parse_json(&body)
            .map_err(|e| e.with_shape(ErrorShape::SessionBrowserV2))?;
    }
    let user = user_of(&caller)?;
    let moved = state.parties.join(&namespace, &id, &user).map_err(error)?;
    if moved.changed {
        announce_join(&state, &moved, &user);
    }
    Ok(Json(party_view(&moved.party)))
}

/// POST `.../parties/users/me/join/code` (200).
async fn join_by_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<JoinByCodeRequest>,
) -> ApiResult<Json<PartySessionResponse>> {
    authorize(
        &state,
        &caller,
        &namespace,
        &player_resource(&namespace),
        action::CREATE,
    )?;
    let user = user_of(&caller)?;
    if body.code.is_empty() {
        return Err(bad_request("code is required"));
    }
    let moved = state
        .parties
        .join_by_code(&namespace, &body.code, &user)
        .map_err(error)?;
    if moved.changed {
        announce_join(&state, &moved, &user);
    }
    Ok(Json(party_view(&moved.party)))
}

/// DELETE `.../parties/{partyId}/users/me/leave` (204).
async fn leave_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(
        &state,
        &caller,
        &namespace,
        &player_resource(&namespace),
        action::DELETE,
    )?;
    let user = user_of(&caller)?;
    let party = state.parties.leave(&namespace, &id, &user).map_err(error)?;
    membership_changed(&state, &party, "");
    Ok(StatusCode::NO_CONTENT)
}

/// DELETE `.../parties/{partyId}/users/me/reject` (204): the members hear `OnPartyRejected`.
async fn reject_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(
        &state,
        &caller,
        &namespace,
        &player_resource(&namespace),
        action::DELETE,
    )?;
    let user = user_of(&caller)?;
    let party = state
        .parties
        .reject(&namespace, &id, &user)
        .map_err(error)?;
    let body = PartyRejectedNotif {
        party_id: party.id.clone(),
        rejected_id: user,
        members: members_view(&party.members),
    };
    tell(
        &state,
        &namespace,
        &party.joined(),
        topics::PARTY_REJECTED,
        &body,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// POST `.../parties/{partyId}/invite` (201): a joined member invites a user of the namespace.
async fn invite_to_party(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SessionInviteRequest>,
) -> ApiResult<(StatusCode, Json<SessionInviteResponse>)> {
    authorize(
        &state,
        &caller,
        &namespace,
        &player_resource(&namespace),
        action::CREATE,
    )?;
    let user = user_of(&caller)?;
    ensure_user(&state, &namespace, &body.user_id)?;
    let party = state
        .parties
        .invite(&namespace, &id, &user, &body.user_id)
        .map_err(error)?;
    invite_notif(&state, &party, &user, &body.user_id);
    Ok((StatusCode::CREATED, Json(SessionInviteResponse::default())))
}

/// DELETE `.../parties/{partyId}/users/{userId}/kick` (200): the leader removes a member.
async fn kick_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id, target)): Path<(String, String, String)>,
) -> ApiResult<Json<KickResponse>> {
    authorize(
        &state,
        &caller,
        &namespace,
        &player_resource(&namespace),
        action::DELETE,
    )?;
    let user = user_of(&caller)?;
    let party = state
        .parties
        .kick(&namespace, &id, &user, &target)
        .map_err(error)?;
    send_json(
        &state.lobby,
        &namespace,
        &target,
        topics::PARTY_KICKED,
        &PartyKickedNotif {
            party_id: party.id.clone(),
        },
    );
    membership_changed(&state, &party, "");
    Ok(Json(KickResponse {
        leader_id: party.leader_id.clone(),
        members: members_view(&party.members),
        party_id: party.id.clone(),
    }))
}

/// POST `.../parties/{partyId}/leader` (200): the leader hands over; the members hear
/// `OnPartyMembersChanged` (its `leaderID`) and `OnPartyUpdated`.
async fn promote_leader(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<PromoteLeaderRequest>,
) -> ApiResult<Json<PartySessionResponse>> {
    authorize(
        &state,
        &caller,
        &namespace,
        &party_resource(&namespace),
        action::UPDATE,
    )?;
    let user = user_of(&caller)?;
    let party = state
        .parties
        .promote(&namespace, &id, &user, &body.leader_id)
        .map_err(error)?;
    announce_members_changed(&state, &party, "");
    let view = party_view(&party);
    tell(
        &state,
        &namespace,
        &party.joined(),
        topics::PARTY_UPDATED,
        &view,
    );
    Ok(Json(view))
}

/// GET `.../users/me/parties`: parties the caller is invited to or in.
async fn my_parties(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<PartyQueryResponse>> {
    state
        .iam
        .require_namespace(&namespace)
        .map_err(|e| e.with_shape(ErrorShape::SessionBrowserV2))?;
    let user = user_of(&caller)?;
    Ok(Json(PartyQueryResponse {
        data: state
            .parties
            .of_user(&namespace, &user)
            .iter()
            .map(party_view)
            .collect(),
        paging: accelbyte::models::session::Paging::default(),
    }))
}
