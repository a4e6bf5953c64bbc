namespace ControlPlane.Cli;

/// <summary>cpctl's exit codes, stable for scripts.</summary>
public static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;

    /// <summary>Bad command line, or the server rejected the input (400).</summary>
    public const int Usage = 1;

    /// <summary>No key, a bad key (401), or a role or tenant the operator lacks (403).</summary>
    public const int Auth = 2;

    /// <summary>The thing named does not exist (404).</summary>
    public const int NotFound = 3;

    /// <summary>Refused or failed on its merits: a conflict (409), a failed drill, a broken audit chain.</summary>
    public const int Refused = 4;

    /// <summary>The server failed (5xx), timed out, or could not be reached.</summary>
    public const int Unavailable = 5;
}
