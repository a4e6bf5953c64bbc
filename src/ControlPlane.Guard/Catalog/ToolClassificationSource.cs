namespace ControlPlane.Guard.Catalog;

/// <summary>Where a tool's own classification (before operator overrides) came from.</summary>
public enum ToolClassificationSource
{
    /// <summary>An upstream tool whose server's annotations are not trusted: an action until an operator classifies it read.</summary>
    Untrusted,

    /// <summary>An upstream tool of a server an all-tenant admin opted into trusting: its <c>readOnlyHint</c> decides.</summary>
    Annotations,

    /// <summary>An in-process tool of this host: declared in its code.</summary>
    Code,
}
