variable "eviction_mode" {
  description = "EVICTION_MODE of the function: evict (Eviction API) or delete (pods delete)."
  type        = string
  default     = "evict"

  validation {
    condition     = contains(["evict", "delete"], var.eviction_mode)
    error_message = "eviction_mode is evict or delete."
  }
}

variable "sweep" {
  description = "Whether {\"sweep\": true} runs are used: they list Deployments in the namespace."
  type        = bool
  default     = false
}
