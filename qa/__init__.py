"""helpdesk-qa: multilingual semantic search over help-portal articles.

Data flows one way: corpus -> sections -> embeddings/index -> search -> API -> widget.
Each module belongs to one step of that flow.
"""

__version__ = "0.1.0"
