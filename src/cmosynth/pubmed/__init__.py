"""NCBI PubMed: the E-utilities client, dated search runs and the MEDLINE XML parser."""
