using ControlPlane.Drills;
using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;

namespace ControlPlane.Host.Api;

internal sealed record RunDrillRequest(string? Level, bool? ConfirmGlobal);

internal sealed record DrillResultResponse(
    string Id, string Level, bool Passed, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, double DurationMs,
    string RanBy, IReadOnlyList<string> Steps, string? Failure, string? SwitchLeftBehind)
{
    public static DrillResultResponse? From(DrillResult? r) => r is null ? null : new(
        r.Id, r.Level.ToWireName(), r.Passed, r.StartedAt, r.FinishedAt, Math.Round((r.FinishedAt - r.StartedAt).TotalMilliseconds, 1),
        r.RanBy, r.Steps, r.Failure, r.SwitchLeftBehind);
}

internal sealed record DrillStatusResponse(
    string Level, bool Scheduled, bool Stale, double? AgeSeconds, DrillResultResponse? Last, DrillResultResponse? LastPassed)
{
    public static DrillStatusResponse From(DrillStatus s) => new(
        s.Level.ToWireName(), s.Scheduled, s.Stale, s.Age is { } age ? Math.Round(age.TotalSeconds) : null,
        DrillResultResponse.From(s.Last), DrillResultResponse.From(s.LastPassed));
}

/// <summary><c>/api/v1/drills</c>: run a kill-switch drill now, and list each level's last drill.</summary>
internal static class DrillApi
{
    public static RouteGroupBuilder MapDrillApi(this RouteGroupBuilder api)
    {
        var drills = api.MapGroup("/drills");
        drills.MapPost("", async (RunDrillRequest body, HttpContext http, DrillService service) =>
        {
            if (!DrillLevels.TryParse(body.Level, out var level))
            {
                throw InvalidRequestException.For("level", $"Level must be one of {string.Join(", ", DrillLevels.Names)}.");
            }

            return DrillResultResponse.From(await service.RunAsync(http.User.Operator(), level, body.ConfirmGlobal is true, http.RequestAborted));
        });
        drills.MapGet("", async (HttpContext http, DrillService service) =>
            new ItemsResponse<DrillStatusResponse>([.. (await service.ListAsync(http.User.Operator(), http.RequestAborted)).Select(DrillStatusResponse.From)]));
        return api;
    }
}
