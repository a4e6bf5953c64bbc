using System.Data.Common;
using System.Text;
using ControlPlane.Audit.Model;

namespace ControlPlane.Audit.Storage;

/// <summary>Turns an <see cref="AuditQuery"/> (and a page cursor) into a parameterised WHERE clause for either dialect.</summary>
internal static class AuditFilter
{
    public const int MaxLimit = 1000;

    /// <summary>Records written before an action runs; left out of listings unless asked for.</summary>
    public const string IntentKind = "tools/call:intent";

    public static int ClampLimit(int limit) => Math.Clamp(limit, 1, MaxLimit);

    /// <summary>True when the query names an empty tenant list: it can match nothing, so no SQL is needed.</summary>
    public static bool MatchesNothing(AuditQuery query) => query.TenantIds is { Count: 0 };

    /// <summary>
    /// Adds the query's conditions as parameters of <paramref name="command"/> and returns the WHERE clause
    /// (or an empty string). From is inclusive and To exclusive, both at the stored microsecond precision.
    /// </summary>
    public static string Where(DbCommand command, AuditDialect dialect, AuditQuery query, AuditCursor? after)
    {
        var conditions = new List<string>();

        if (query.TenantIds is { } tenants)
        {
            if (tenants.Count == 1)
            {
                // The common case (one tenant's operator). Plain equality lets PostgreSQL walk the (tenant_id, ts, seq)
                // index in page order; with "= ANY" it sorts every row of the tenant first.
                conditions.Add("tenant_id = @tenant");
                Add(command, "@tenant", tenants[0]);
            }
            else if (dialect == AuditDialect.PostgreSql)
            {
                conditions.Add("tenant_id = ANY(@tenants)");
                Add(command, "@tenants", tenants.ToArray());
            }
            else
            {
                var names = new StringBuilder();
                for (var i = 0; i < tenants.Count; i++)
                {
                    var name = "@tenant" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    names.Append(i == 0 ? name : ", " + name);
                    Add(command, name, tenants[i]);
                }

                conditions.Add($"tenant_id IN ({names})");
            }
        }

        Equal(command, conditions, "agent_id", query.AgentId);
        Equal(command, conditions, "user_id", query.UserId);
        Equal(command, conditions, "session_id", query.SessionId);
        Equal(command, conditions, "tool", query.Tool);
        Equal(command, conditions, "decision", query.Decision);
        Equal(command, conditions, "outcome", query.Outcome);
        if (query.Kind is { } kind)
        {
            if (kind.EndsWith('*'))
            {
                // A prefix: LIKE with its own wildcards escaped, so "operator/*" cannot match "operatorX" via '_' or '%'.
                conditions.Add(@"kind LIKE @kind ESCAPE '\'");
                Add(command, "@kind", kind[..^1].Replace(@"\", @"\\", StringComparison.Ordinal)
                    .Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal) + "%");
            }
            else
            {
                conditions.Add("kind = @kind");
                Add(command, "@kind", kind);
            }
        }

        if (!query.IncludeIntents && query.Kind != IntentKind)
        {
            conditions.Add("kind <> @intent_kind");
            Add(command, "@intent_kind", IntentKind);
        }

        if (query.From is { } from)
        {
            conditions.Add("ts >= @from");
            Add(command, "@from", Time(dialect, AuditRows.ToUnixMicros(from)));
        }

        if (query.To is { } to)
        {
            conditions.Add("ts < @to");
            Add(command, "@to", Time(dialect, AuditRows.ToUnixMicros(to)));
        }

        if (after is { } cursor)
        {
            // Rows after the cursor in (ts DESC, tenant_id ASC, seq DESC) order. The mixed directions rule out a
            // row-value comparison; the leading "ts <= " lets both databases range-scan the ts index.
            conditions.Add("ts <= @cursor_ts AND (ts < @cursor_ts OR (ts = @cursor_ts AND (tenant_id > @cursor_tenant OR (tenant_id = @cursor_tenant AND seq < @cursor_seq))))");
            Add(command, "@cursor_ts", Time(dialect, cursor.TimestampMicros));
            Add(command, "@cursor_tenant", cursor.TenantId);
            Add(command, "@cursor_seq", cursor.Sequence);
        }

        return conditions.Count == 0 ? string.Empty : "WHERE " + string.Join(" AND ", conditions);
    }

    private static object Time(AuditDialect dialect, long micros) =>
        dialect == AuditDialect.Sqlite ? micros : AuditRows.FromUnixMicros(micros);

    private static void Equal(DbCommand command, List<string> conditions, string column, string? value)
    {
        if (value is null)
        {
            return;
        }

        conditions.Add($"{column} = @{column}");
        Add(command, "@" + column, value);
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
